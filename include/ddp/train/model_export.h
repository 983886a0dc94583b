// Exporting a trained model for PyTorch (Python).
//
// export_state_dict writes the model's parameters and buffers as a plain dict name -> CPU tensor
// in torch::pickle_save's (= torch.save's) format, minus pickle_save's TorchScript type tags, so
// that Python's `torch.load(path)` reads it with its default weights_only=True; a PyTorch module
// whose parameter and buffer names match (see models.h) accepts it with load_state_dict(strict=True).
#pragma once

#include <cstdint>
#include <string>

#include "ddp/train/models.h"

namespace ddp {

// Throws Error when the file cannot be written.
void export_state_dict(torch::nn::Module& model, const std::string& path);

// Writes {"input": x, "logits": model(x)} (CPU float tensors; x of shape [n, channels, 32, 32],
// random from `seed`) so that a port of the model can be checked against this one. The model
// is evaluated in eval() mode and left in train() mode.
void export_example(Classifier& model, int64_t channels, int64_t n, uint64_t seed, const std::string& path);

}  // namespace ddp
