/// @file
/// @brief Exception types thrown by deq, and the helpers that build their messages.
///
/// Every error deq reports on bad input is one of the exceptions below. Messages name the argument
/// (or file and field) and the offending value, e.g.
/// `deq: invalid argument 'bits' = 17: must be in [2, 16]`.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace deq {

/// Base class of every exception thrown by deq.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A parameter value is outside its documented range (bit width, threshold, name, ...).
class invalid_argument : public error {
public:
    using error::error;
};

/// Tensor shapes do not agree, or a dimension is zero where that is not allowed.
class shape_error : public error {
public:
    using error::error;
};

/// An input holds NaN or infinity where finite values are required.
class numeric_error : public error {
public:
    using error::error;
};

/// A file or serialized state is missing, empty or malformed.
class format_error : public error {
public:
    using error::error;
};

namespace detail {

/// Concatenates the stream representations of @p parts into one string.
template <class... Parts>
std::string concat(Parts const&... parts) {
    std::ostringstream out;
    out.precision(9);
    (out << ... << parts);
    return out.str();
}

/// Throws deq::invalid_argument naming @p name, its @p value and the @p requirement it violates.
template <class Value>
[[noreturn]] void throw_invalid_argument(std::string_view name, Value const& value, std::string_view requirement) {
    throw invalid_argument(concat("deq: invalid argument '", name, "' = ", value, ": ", requirement));
}

/// Throws deq::invalid_argument with a free-form message about argument @p name.
[[noreturn]] inline void throw_invalid_name(std::string_view name, std::string_view value, std::string_view known) {
    throw invalid_argument(concat("deq: invalid argument '", name, "' = \"", value, "\": expected one of ", known));
}

/// Throws deq::shape_error with @p message prefixed by "deq: shape mismatch: ".
[[noreturn]] inline void throw_shape_error(std::string const& message) {
    throw shape_error("deq: shape mismatch: " + message);
}

/// Checks a closed range [lo, hi] for a numeric argument, rejecting NaN.
template <class Value, class Bound>
void require_in_range(std::string_view name, Value value, Bound lo, Bound hi) {
    if (!(value >= lo && value <= hi)) {
        throw_invalid_argument(name, value, concat("must be in [", lo, ", ", hi, "]"));
    }
}

}  // namespace detail
}  // namespace deq
