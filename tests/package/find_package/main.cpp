// A program built against the deq package: bit masks, rounding and the serial execution space.
#include <cstdio>
#include <string>

#include <deq/core/bit_mask.hpp>
#include <deq/exec/serial.hpp>
#include <deq/numeric/rounding.hpp>
#include <deq/version.hpp>

namespace {

int failures = 0;

void check(bool ok, char const* what) {
    if (!ok) {
        std::printf("FAILED: %s\n", what);
        ++failures;
    }
}

// Marks (i, j) when (i + j) % 3 == 0 in a [1, 1, rows, cols] mask.
struct mark_diagonals {
    deq::bit_mask_view mask;
    deq::index_t cols;
    void operator()(deq::index_t k) const {
        deq::index_t const i = k / cols;
        deq::index_t const j = k % cols;
        mask.set(0, 0, i, j, (i + j) % 3 == 0);
    }
};

}  // namespace

int main() {
    // The headers' version agrees with the CMake package version.
    std::string const version = std::to_string(DEQ_VERSION_MAJOR) + "." + std::to_string(DEQ_VERSION_MINOR) + "." +
                                std::to_string(DEQ_VERSION_PATCH);
    check(version == DEQ_EXPECTED_VERSION_STRING, "DEQ_VERSION matches the package version");

    // round_half_even follows torch.round: ties go to the even neighbour.
    check(deq::round_half_even(2.5) == 2.0, "round_half_even(2.5) == 2");
    check(deq::round_half_even(3.5) == 4.0, "round_half_even(3.5) == 4");
    check(deq::round_half_even(-2.5f) == -2.0f, "round_half_even(-2.5f) == -2");
    check(deq::round_half_even(0.49) == 0.0, "round_half_even(0.49) == 0");

    // A 3 x 70 mask (two 64-bit words per row) filled by a kernel on the serial space.
    deq::index_t const rows = 3, cols = 70;
    deq::bit_mask mask(1, 1, rows, cols);
    deq::exec::parallel_for(deq::exec::serial{}, rows * cols, mark_diagonals{mask.view(), cols});
    // Row i holds the j in [0, 70) with j = -i (mod 3): 24, 23 and 23 of them.
    check(mask.view().count_row(0, 0, 0) == 24, "row 0 count");
    check(mask.view().count_row(0, 0, 1) == 23, "row 1 count");
    check(mask.view().count_row(0, 0, 2) == 23, "row 2 count");
    check(mask.count() == 70, "total count");
    check(mask.test(0, 0, 0, 69) && !mask.test(0, 0, 1, 69) && mask.test(0, 0, 2, 67), "bits past the first word");

    if (failures == 0) std::printf("deq %s consumer: all checks passed\n", version.c_str());
    return failures == 0 ? 0 : 1;
}
