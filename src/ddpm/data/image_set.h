// image_set.h — a set of images to evaluate, in the two layouts evaluators exchange: a folder of image files, or
// an .npz whose arr_0 is uint8 [N, H, W, C] (the layout of guided-diffusion's evaluator and pytorch-fid; labels,
// when written, in arr_1 [N] int64). Not here: datasets for training (data.h), the npz bytes (formats/npz.h).
// Size legend: N images, C channels, H×W size.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace ddpm {

// A folder (PNG/JPEG/BMP files found recursively, in sorted path order, all of one size; gray stays 1 channel,
// RGB/RGBA become 3) or an .npz file. Throws naming the path and the problem. -> [N,C,H,W] uint8
torch::Tensor load_image_set(const std::string& path);

// Writes [N,C,H,W] uint8 images (and optional [N] labels) as an .npz (arr_0 [N,H,W,C] uint8, arr_1 int64),
// atomically.
void save_image_npz(const std::string& path, const torch::Tensor& images_u8, const torch::Tensor& labels = {});

// Writes several [N,C,H,W] uint8 image arrays (sizes may differ from one array to the next) as arr_0, arr_1, ...
// of one .npz, each [N,H,W,C] uint8, atomically (the restoration verbs: results in arr_0, their inputs in arr_1).
void save_image_arrays_npz(const std::string& path, const std::vector<torch::Tensor>& arrays_u8);

}  // namespace ddpm
