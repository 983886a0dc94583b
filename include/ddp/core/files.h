// Small POSIX file-system helpers.
//
// Note [no std::filesystem]: the PyPI torch wheel's libtorch.so exports its own copies of
// std::filesystem functions (remove_all, create_directories, ...). Because libtorch.so comes
// before libstdc++ in the executable's library order, our calls bind to those copies, and
// std::filesystem::remove_all crashed (a call through a null pointer). ddptrain and its tests
// therefore use these helpers instead of <filesystem>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ddp::files {

bool exists(const std::string& path);
bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);
// Size in bytes, or -1 when the file cannot be stat'ed.
int64_t file_size(const std::string& path);
// mkdir -p. Returns an empty string on success, else the reason.
std::string make_directories(const std::string& path);
// rm -rf; errors are ignored.
void remove_tree(const std::string& path);
// Names of the entries of `dir` (no "." or ".."), sorted; empty when it cannot be read.
std::vector<std::string> list_directory(const std::string& dir);
std::string join(const std::string& a, const std::string& b);
std::string parent(const std::string& path);
// Creates a fresh directory under $TMPDIR (or /tmp) named prefix + random suffix.
std::string make_temp_directory(const std::string& prefix);

}  // namespace ddp::files
