// Shared helpers of deq's libFuzzer targets (tests/fuzz/*_fuzz.cpp).
//
// The contract every target checks: on any input, deq either returns a result or throws a
// deq::error subclass whose message starts with "deq: ". guarded() / attempt() catch deq::error
// (expected for bad input) and let every other exception escape, so libFuzzer reports it (as a
// deadly signal from std::terminate) just like a crash, a sanitizer report or a failed
// DEQ_FUZZ_CHECK.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include <deq/core/error.hpp>
#include <deq/core/tensor.hpp>

namespace deq_fuzz {

/// Reports a violated property and aborts (libFuzzer saves the input as a crash-* file).
[[noreturn]] inline void fail(std::string_view what, char const* file, int line) {
    std::fprintf(stderr, "\ndeq fuzz: %s:%d: check failed: %.*s\n", file, line, static_cast<int>(what.size()), what.data());
    std::fflush(stderr);
    std::abort();
}

}  // namespace deq_fuzz

/// Checks a property of deq's result; a violation is a finding.
#define DEQ_FUZZ_CHECK(cond) ((cond) ? static_cast<void>(0) : ::deq_fuzz::fail(#cond, __FILE__, __LINE__))
/// DEQ_FUZZ_CHECK with an explanation (a std::string or string literal) printed on failure.
#define DEQ_FUZZ_CHECK_MSG(cond, msg) ((cond) ? static_cast<void>(0) : ::deq_fuzz::fail(std::string(#cond ": ") + (msg), __FILE__, __LINE__))

namespace deq_fuzz {

/// Checks the message of a deq error: it must start with "deq: " and say something.
inline void check_message(deq::error const& e) {
    std::string_view const m = e.what();
    DEQ_FUZZ_CHECK_MSG(m.starts_with("deq: ") && m.size() > 5, std::string(m));
}

/// Runs @p f. @return true when it returned normally, false when it threw a deq::error (whose
/// message is checked). Any other exception propagates (a finding).
template <class F>
bool guarded(F&& f) {
    try {
        std::forward<F>(f)();
        return true;
    } catch (deq::error const& e) {
        check_message(e);
        return false;
    }
}

/// Runs @p f. @return its result, or std::nullopt when it threw a deq::error (message checked).
template <class F>
auto attempt(F&& f) -> std::optional<std::decay_t<decltype(f())>> {
    try {
        return std::forward<F>(f)();
    } catch (deq::error const& e) {
        check_message(e);
        return std::nullopt;
    }
}

/// The message of the deq::error thrown by @p f ("" when it returns normally).
template <class F>
std::string error_of(F&& f) {
    try {
        std::forward<F>(f)();
        return {};
    } catch (deq::error const& e) {
        check_message(e);
        return e.what();
    }
}

/// Reads typed values from the fuzzer's bytes; past the end every read returns zeros.
class byte_reader {
public:
    byte_reader(std::uint8_t const* data, std::size_t size) : data_(data), size_(size) {}

    /// @return Bytes left.
    std::size_t remaining() const noexcept { return size_ - pos_; }
    /// @return True when every byte has been read.
    bool empty() const noexcept { return pos_ >= size_; }

    /// @return The next byte (0 past the end).
    std::uint8_t byte() noexcept { return pos_ < size_ ? data_[pos_++] : 0; }
    /// @return The low bit of the next byte.
    bool flag() noexcept { return (byte() & 1u) != 0; }

    /// @return The raw little-endian bytes of a @p T (zero-filled past the end).
    template <class T>
    T raw() noexcept {
        static_assert(std::is_trivially_copyable_v<T>);
        unsigned char buf[sizeof(T)] = {};
        for (auto& b : buf) b = byte();
        T v;
        std::memcpy(&v, buf, sizeof(T));
        return v;
    }

    /// @return Up to @p n of the next bytes, as text.
    std::string_view take(std::size_t n) noexcept {
        n = std::min(n, remaining());
        std::string_view const s(reinterpret_cast<char const*>(data_ + pos_), n);
        pos_ += n;
        return s;
    }
    /// @return Every byte left, as text.
    std::string_view rest() noexcept { return take(remaining()); }

private:
    std::uint8_t const* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

/// The fuzzer's bytes as text.
inline std::string_view as_text(std::uint8_t const* data, std::size_t size) noexcept {
    return {reinterpret_cast<char const*>(data), size};
}

/// Field separator of the multi-part text inputs (ASCII unit separator, written \x1f in seeds).
inline constexpr char field_separator = '\x1f';

/// Splits @p text at field_separator into at most @p max_fields parts (the last one keeps the rest).
inline std::vector<std::string_view> split_fields(std::string_view text, std::size_t max_fields) {
    std::vector<std::string_view> out;
    while (out.size() + 1 < max_fields) {
        std::size_t const sep = text.find(field_separator);
        if (sep == std::string_view::npos) break;
        out.push_back(text.substr(0, sep));
        text.remove_prefix(sep + 1);
    }
    out.push_back(text);
    return out;
}

/// A per-process scratch folder for the readers that take paths, removed at exit: in /dev/shm where it
/// exists (a memory file system: thousands of small files per second on a disk can stall one open() past
/// libFuzzer's timeout, as one CI run saw), else in the system's temporary folder.
class scratch_dir {
public:
    /// @return The folder (created on first use).
    static std::filesystem::path const& path() {
        static scratch_dir const dir;
        return dir.path_;
    }

private:
    scratch_dir() {
        std::error_code ec;
        std::filesystem::path const shm = "/dev/shm";
        bool const memory = std::filesystem::is_directory(shm, ec) && ::access(shm.c_str(), W_OK) == 0;
        path_ = (memory ? shm : std::filesystem::temp_directory_path()) / ("deq-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(path_);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::filesystem::path path_;
};

/// Writes @p content to the scratch file @p name (replacing it). @return Its path.
inline std::filesystem::path write_scratch_file(std::string const& name, std::string_view content) {
    std::filesystem::path const file = scratch_dir::path() / name;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    DEQ_FUZZ_CHECK_MSG(static_cast<bool>(out), "cannot write the scratch file " + file.string());
    return file;
}

/// Whether a tensor of these extents can be allocated and viewed without overflowing index_t:
/// the product of the non-zero extents fits. (The safetensors reader accepts shapes such as
/// [0, 2^62, 2^62], whose strides overflow; that known defect is being fixed separately, so the
/// targets do not build tensors of such shapes yet.)
template <class Extents>
bool extents_fit(Extents const& extents) noexcept {
    deq::index_t n = 1;
    for (deq::index_t e : extents) {
        if (e < 0) return false;
        if (e == 0) continue;
        if (n > std::numeric_limits<deq::index_t>::max() / e) return false;
        n *= e;
    }
    return true;
}

}  // namespace deq_fuzz
