// inputs.h — a user's image as the input of a restoration method: the bytes of a PNG/JPEG (a file's or an
// upload's) checked complete, decoded, alpha dropped, and checked against the model's channels and size. Shared by
// the CLI verbs (a file) and the server (a base64 upload). Not here: masks (masks.h), dataset images (data/).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace ddpm {

// The bytes of one image -> [C,H,W] uint8 for a model of `channels` (1 or 3): structure checked complete (a
// truncated PNG/JPEG is an error), gray+alpha -> gray, RGBA -> RGB, then channels and size (height × width) must
// match. `what` names the input in errors ("--image 'a.png'", "field 'image'"); `hint` adds to the size error.
torch::Tensor input_image_from_bytes(const std::string& bytes, const std::string& what, int64_t channels,
                                     int64_t height, int64_t width, const std::string& hint = "");

// The same for a whole file (read here). Throws naming `flag` and the path.
torch::Tensor input_image_from_file(const std::string& path, const std::string& flag, int64_t channels,
                                    int64_t height, int64_t width, const std::string& hint = "");

// "28x28" (width x height) and "gray"/"RGB", as the errors write them.
std::string side_str(int64_t height, int64_t width);
const char* channel_word(int64_t channels);

}  // namespace ddpm
