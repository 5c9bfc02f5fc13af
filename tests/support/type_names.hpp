// doctest names for the element and bit-width types used in TEST_CASE_TEMPLATE (comma-free).
#pragma once

#include <doctest/doctest.h>

#include <deq/numeric/bfloat16.hpp>
#include <deq/numeric/float16.hpp>
#include <deq/numeric/int_b.hpp>

TYPE_TO_STRING_AS("float16", deq::float16);
TYPE_TO_STRING_AS("bfloat16", deq::bfloat16);
TYPE_TO_STRING_AS("int2b", deq::int2b_t);
TYPE_TO_STRING_AS("int3b", deq::int3b_t);
TYPE_TO_STRING_AS("int4b", deq::int4b_t);
TYPE_TO_STRING_AS("int5b", deq::int5b_t);
TYPE_TO_STRING_AS("int6b", deq::int6b_t);
TYPE_TO_STRING_AS("int7b", deq::int7b_t);
TYPE_TO_STRING_AS("int8b", deq::int8b_t);
TYPE_TO_STRING_AS("int16b", deq::int16b_t);
TYPE_TO_STRING_AS("uint2b", deq::uint2b_t);
TYPE_TO_STRING_AS("uint3b", deq::uint3b_t);
TYPE_TO_STRING_AS("uint4b", deq::uint4b_t);
TYPE_TO_STRING_AS("uint5b", deq::uint5b_t);
TYPE_TO_STRING_AS("uint6b", deq::uint6b_t);
TYPE_TO_STRING_AS("uint7b", deq::uint7b_t);
TYPE_TO_STRING_AS("uint8b", deq::uint8b_t);
TYPE_TO_STRING_AS("uint16b", deq::uint16b_t);

/// Every int_b format, for TEST_CASE_TEMPLATE.
#define DEQ_TEST_ALL_FORMATS                                                                                  \
    deq::int2b_t, deq::int3b_t, deq::int4b_t, deq::int5b_t, deq::int6b_t, deq::int7b_t, deq::int8b_t,         \
        deq::int16b_t, deq::uint2b_t, deq::uint3b_t, deq::uint4b_t, deq::uint5b_t, deq::uint6b_t,             \
        deq::uint7b_t, deq::uint8b_t, deq::uint16b_t
