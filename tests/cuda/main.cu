// The doctest main of deq_cuda_tests. Without arguments it runs the "host" suite, which needs the
// CUDA runtime library but no GPU. With --gpu it runs the "gpu" suite, and exits with 77 (CTest's
// SKIP_RETURN_CODE) when no CUDA device is present, so a machine without a GPU reports the suite as
// skipped rather than passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "gpu_support.hpp"

int main(int argc, char** argv) {
    bool gpu = false;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--gpu") == 0) {
            gpu = true;
            continue;
        }
        args.push_back(argv[i]);
    }
    doctest::Context context;
    context.applyCommandLine(static_cast<int>(args.size()), args.data());
    if (gpu) {
        if (!deq_test::have_gpu()) {
            std::fprintf(stderr, "no CUDA device: the gpu suite is skipped\n");
            return 77;
        }
        context.addFilter("test-suite", "gpu");
    } else {
        context.addFilter("test-suite", "host");
    }
    return context.run();
}
