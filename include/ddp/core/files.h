// Small POSIX file-system helpers.
//
// Note [no std::filesystem]: the PyPI torch wheel's libtorch.so exports its own copies of
// std::filesystem functions (remove_all, create_directories, ...). Because libtorch.so comes
// before libstdc++ in the executable's library order, our calls bind to those copies, and
// std::filesystem::remove_all crashed (a call through a null pointer). ddptrain and its tests
// therefore use these helpers instead of <filesystem>.
#pragma once

#include <cstdint>
#include <functional>
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

// Note [atomic commit]: `path` holds either its old content or the whole new one, never a part.
// `write(tmp)` writes the new content to path + ".tmp"; that file is fsynced and renamed over
// `path`. When `write` throws, the temporary is removed and ddp::Error says "saving <what> <path>
// failed (<kept>): <cause>; <fix>"; a failed rename is an Error too. The caller fsyncs the folder
// (fsync_directory) once its files are all committed.
void commit_file(const std::string& path, const std::string& what, const std::string& kept,
                 const std::string& fix, const std::function<void(const std::string& tmp)>& write);
// fsync of a folder, so that the renames into it survive a power loss; errors are ignored.
void fsync_directory(const std::string& dir);

}  // namespace ddp::files
