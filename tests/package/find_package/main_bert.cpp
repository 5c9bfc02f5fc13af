// Consumer of deq::bert (find_package(deq COMPONENTS BERT)): one linear layer through the CBLAS and
// an attention mode parsed, checked against values computed by hand.
#include <deq/bert/attention_mode.hpp>
#include <deq/bert/blas.hpp>

#include <cmath>
#include <cstdio>

int main() {
    // y = x·wᵀ + b with x = [[1, 2, 3]], w = [[1, 0, -1], [2, 1, 0]], b = [0.5, -1].
    deq::tensor<float, 2> x({1, 3}), w({2, 3}), y({1, 2});
    deq::tensor<float, 1> b({2});
    float const xv[] = {1, 2, 3}, wv[] = {1, 0, -1, 2, 1, 0}, bv[] = {0.5f, -1.0f};
    std::copy(xv, xv + 3, x.data());
    std::copy(wv, wv + 6, w.data());
    std::copy(bv, bv + 2, b.data());
    deq::bert::linear(x.cview(), w.cview(), b.cview(), y.view());
    float const expected[] = {1 - 3 + 0.5f, 2 + 2 - 1.0f};
    for (int i = 0; i < 2; ++i) {
        if (std::fabs(y.data()[i] - expected[i]) > 1e-6f) {
            std::printf("y[%d] = %g, expected %g\n", i, static_cast<double>(y.data()[i]), static_cast<double>(expected[i]));
            return 1;
        }
    }
    auto const mode = deq::bert::parse_attention_mode("sanger:0.02");
    std::printf("deq::bert consumer: ok (%s)\n", mode.spec().c_str());
    return 0;
}
