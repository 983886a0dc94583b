// The checkpoint manifest (private to train/): the file names of a checkpoint, and the JSON
// manifest that vouches for its payload (progress, run facts, payload size and FNV-1a 64).
// checkpoint.h describes the format; checkpoint.cpp saves and restores, checkpoint_folder.cpp
// lists, picks and prunes.
#pragma once

#include <cstdint>
#include <string>

#include "ddp/train/checkpoint.h"

namespace ddp::checkpoint_files {

constexpr int64_t kFormatVersion = 2;

// "epoch_EEEE_step_SSSSSSSS", the name of a checkpoint's files without their extension.
std::string stem(int64_t epoch, int64_t step);
bool ends_with(const std::string& s, const std::string& suffix);
// The manifest (.json) and payload (.pt) of a checkpoint named by either.
std::string manifest_of(const std::string& path);
std::string payload_of(const std::string& path);

// Writes the manifest of `state` whose payload `payload_name` (in the same folder) has `bytes`
// bytes and FNV-1a 64 `checksum`, atomically (Note [atomic commit]).
void write_manifest(const std::string& path, const CheckpointState& state, const std::string& payload_name,
                    int64_t bytes, uint64_t checksum);

// Reads and checks a manifest: parseable, this format, every field present and in range. Fills
// `payload_bytes` and `payload_checksum` (hex). InputError naming the file otherwise.
CheckpointState read_manifest(const std::string& manifest, int64_t* payload_bytes,
                              std::string* payload_checksum);

}  // namespace ddp::checkpoint_files
