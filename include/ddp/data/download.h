// Fetching a dataset archive: an HTTP(S) download with libcurl, an MD5 check (OpenSSL's EVP),
// and extraction of a .tar/.tar.gz with libarchive. No shelling out.
//
// Promises of fetch_archive():
//   - Already-present, complete data is never fetched again: when every expected file of the
//     extracted folder exists and is non-empty nothing happens; when only the archive is there and
//     its MD5 matches, it is extracted without a download.
//   - A download goes to "<archive>.part-<host>-<pid>" and is renamed to the archive's name only
//     after it is complete and its MD5 matches; a wrong checksum removes the partial file.
//   - Extraction goes to a temporary folder under `root` and the dataset folder is renamed into
//     place only when the archive was read to its end and held every expected file, so a corrupt
//     or truncated archive never leaves a half dataset under the real name.
//   - Every failure (HTTP status >= 400, no connection, wrong checksum, corrupt archive, missing
//     files) is an InputError naming the URL or file and what to do.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ddp {

// Where a dataset comes from and what its archive must produce.
struct ArchiveSpec {
  std::string url;
  std::string md5;                 // Lower-case hex.
  std::string archive_name;        // File name under root, e.g. "cifar-10-binary.tar.gz".
  std::string folder;              // Folder the archive extracts to, e.g. "cifar-10-batches-bin".
  std::vector<std::string> files;  // Files that must exist in `folder` afterwards.
};

// What fetch_archive() did, for logs and tests.
enum class FetchResult { kAlreadyPresent, kExtractedExisting, kDownloaded };

// Makes `root/spec.folder` hold spec.files, downloading and extracting as needed (see above).
// `progress`: draw a progress bar on stderr (the caller passes isatty(2)).
FetchResult fetch_archive(const ArchiveSpec& spec, const std::string& root, bool progress);

// Downloads `url` to `dest` (through a temporary name). Throws InputError on any failure.
void download_file(const std::string& url, const std::string& dest, bool progress);

// The MD5 of a file or of bytes, as lower-case hex. A missing file is an InputError.
std::string md5_file(const std::string& path);
std::string md5_hex(const void* data, size_t size);

// Extracts every entry of a tar archive (optionally gzip/bzip2/xz compressed) under `dir`.
// Absolute paths and ".." are refused. A corrupt or truncated archive is an InputError.
void extract_archive(const std::string& archive, const std::string& dir);

}  // namespace ddp
