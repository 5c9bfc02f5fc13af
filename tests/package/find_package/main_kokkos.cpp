// A program built against deq::kokkos: a deq kernel run on Kokkos' default host execution space.
#include <cstdio>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>
#include <deq/exec/kokkos.hpp>

namespace {

struct add_one {
    int* hits;
    void operator()(deq::index_t i) const { hits[i] += 1; }
};

}  // namespace

int main(int argc, char** argv) {
    Kokkos::ScopeGuard guard(argc, argv);
    int failures = 0;
    {
        deq::exec::kokkos space{Kokkos::DefaultHostExecutionSpace{}};
        static_assert(deq::exec::host_execution_space<decltype(space)>);
        std::vector<int> hits(1000, 0);
        deq::exec::parallel_for(space, static_cast<deq::index_t>(hits.size()), add_one{hits.data()});
        for (int h : hits) failures += h != 1;
        if (deq::exec::name_of<decltype(space)>() != std::string("kokkos")) ++failures;
    }
    std::printf("deq::kokkos consumer (Kokkos %d): %s\n", KOKKOS_VERSION, failures == 0 ? "all checks passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
