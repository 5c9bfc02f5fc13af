// doctest main for the Kokkos tests: Kokkos lives for the whole process (ScopeGuard exists from
// Kokkos 3.4 through 5.x; InitArguments / InitializationSettings differ, so they are not used).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <Kokkos_Core.hpp>

int main(int argc, char** argv) {
    Kokkos::ScopeGuard guard(argc, argv);
    doctest::Context context(argc, argv);
    return context.run();
}
