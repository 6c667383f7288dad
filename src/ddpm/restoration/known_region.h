// known_region.h — the two moves every "keep the known pixels" method makes (replace, RePaint, masked SDEdit,
// ILVR's reference): noise a clean image to a visited noise level, and paste the known region into an image.
// Not here: the reverse step (samplers/ddpm_sampler.h's ddpm_step).
#pragma once

#include "ddpm/samplers/sampler.h"

namespace ddpm {

// q(x_t | x_0 = y) at noise level ᾱ (eq. 4): √ᾱ y + √(1 − ᾱ) z, one draw from `noise`; y itself (no draw)
// when ᾱ = 1. y [B,C,H,W] -> [B,C,H,W]
torch::Tensor noised_to(const torch::Tensor& y, double alpha_bar, const NoiseFn& noise);

// known where keep > 0.5, else unknown (exactly: no arithmetic on either). keep [1|B, 1|C, H, W] 0/1;
// known, unknown [B,C,H,W] -> [B,C,H,W]
torch::Tensor paste_known(const torch::Tensor& keep, const torch::Tensor& known, const torch::Tensor& unknown);

// Throws unless keep is a 0/1 mask that broadcasts to `like` [B,C,H,W] (1 or B images, 1 or C channels) and
// keeps at least one pixel and drops at least one. `what` names the input in the message.
void check_keep_mask(const torch::Tensor& keep, const torch::Tensor& like, const std::string& what);

}  // namespace ddpm
