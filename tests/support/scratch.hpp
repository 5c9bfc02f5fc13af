// Scratch files for deq's unit tests: written under the test's working directory
// (the build tree under CTest), one directory per process so parallel test cases never collide.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <unistd.h>

namespace deq_test {

/// A fresh directory <cwd>/deq_scratch/<tag>-<pid>, removed (with its files) on destruction.
class scratch_dir {
public:
    explicit scratch_dir(std::string_view tag)
        : path_(std::filesystem::current_path() / "deq_scratch" / (std::string(tag) + "-" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    scratch_dir(scratch_dir const&) = delete;
    scratch_dir& operator=(scratch_dir const&) = delete;

    std::filesystem::path const& path() const { return path_; }

    /// Writes @p bytes (exactly, binary) to <dir>/<name> and returns the file's path.
    std::filesystem::path write(std::string_view name, std::string_view bytes) const {
        std::filesystem::path const file = path_ / std::string(name);
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        return file;
    }

private:
    std::filesystem::path path_;
};

}  // namespace deq_test
