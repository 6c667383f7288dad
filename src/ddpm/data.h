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
#pragma once

#include <torch/torch.h>

#include <string>

namespace ddpm {

constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct Dataset {
  std::string name;        // the spec it came from
  torch::Tensor images;    // [N, C, H, W] uint8, CPU
  torch::Tensor labels;    // [N] int64, CPU (undefined if the dataset has none)
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

// Loads a dataset from a spec (see above). Throws on an unknown spec, missing or corrupt files.
Dataset load_dataset(const std::string& spec);

// uint8 [B,C,H,W] -> float [-1, 1] (the DDPM data scaling) and back (rounding, clamped).
torch::Tensor to_model_range(const torch::Tensor& u8);
torch::Tensor to_uint8(const torch::Tensor& x);

}  // namespace ddpm
