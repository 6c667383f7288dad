// data.h — datasets as uint8 image tensors plus optional labels, and the batches the trainer draws.
// Readers: the MNIST/Fashion-MNIST IDX format (gzipped or raw; byte checks in formats/idx.h) and CIFAR-10
// (cifar10.h). Every reader validates magic numbers, sizes and file lengths and throws with the path and the reason. Not here: augmentation (train.cpp), image files
// (image_io.h).
//
// Dataset specs (--data):
//   fashion-mnist[:DIR][@split]  Fashion-MNIST IDX files; DIR defaults to /usr/share/datasets/fashion-mnist
//   mnist:DIR[@split]            MNIST IDX files in DIR
//   split is train (default) or test: train-images-idx3-ubyte[.gz] / t10k-images-idx3-ubyte[.gz] (+ labels).
//   cifar10:DIR[@split]          CIFAR-10 binary batches in DIR (cifar10.h): data_batch_1..5.bin / test_batch.bin
//   images:DIR                   PNG/JPEG files under DIR, recursively (image_folder.h), decoded once to the
//                                model's size and channels into a memory-mapped cache; labels from first-level
//                                sub-folders when asked for. No split: DIR is everything after "images:".
#pragma once

#include <torch/torch.h>

#include <ostream>
#include <string>
#include <vector>

namespace ddpm {

constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct Dataset {
  std::string name;        // the spec it came from
  torch::Tensor images;    // [N, C, H, W] uint8, CPU
  torch::Tensor labels;    // [N] int64, CPU (undefined if the dataset has none)
  std::vector<std::string> class_names;  // label -> name, where the dataset has names (image folders)
  int64_t size() const { return images.size(0); }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

// Reads a whole file, transparently gunzipping it if it starts with the gzip magic. Throws on I/O errors or a
// corrupt/truncated gzip stream.
std::string read_file_maybe_gz(const std::string& path);

// IDX: big-endian magic 0x00000803 (images, dims N,H,W) or 0x00000801 (labels, dim N), then uint8 data.
torch::Tensor read_idx_images(const std::string& path);  // [N, 1, H, W] uint8
torch::Tensor read_idx_labels(const std::string& path);  // [N] int64

// What an image folder is decoded to (the other formats have a fixed size and ignore these).
struct DatasetOptions {
  int64_t image_size = 0;       // H = W (required for images:DIR)
  int64_t channels = 3;         // 1 or 3
  bool labels = false;          // class labels from first-level sub-folders (sorted names)
  bool allow_upscale = false;   // else an image smaller than image_size is an error naming it
  bool skip_bad = false;        // report and skip unreadable files instead of stopping
  std::string cache;            // cache file ("" = decode into memory, no file)
  std::ostream* log = nullptr;  // decoding progress, skipped files, cache decisions
};

// Loads a dataset from a spec (see above). Throws on an unknown spec, missing or corrupt files. An image folder's
// images tensor maps the cache file read-only: index it, never write into it.
Dataset load_dataset(const std::string& spec, const DatasetOptions& o = {});
// Whether a spec names an image folder (images:DIR): no split, a decode cache, class folders.
inline bool is_image_folder_spec(const std::string& spec) { return spec.rfind("images:", 0) == 0; }

// uint8 [B,C,H,W] -> float [-1, 1] (the DDPM data scaling) and back (rounding, clamped).
torch::Tensor to_model_range(const torch::Tensor& u8);
torch::Tensor to_uint8(const torch::Tensor& x);

}  // namespace ddpm
