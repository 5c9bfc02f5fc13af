/// @file
/// @brief Library version numbers.
#pragma once

/// Major version of deq.
#define DEQ_VERSION_MAJOR 0
/// Minor version of deq.
#define DEQ_VERSION_MINOR 1
/// Patch version of deq.
#define DEQ_VERSION_PATCH 0
/// Version as one integer: major * 10000 + minor * 100 + patch.
#define DEQ_VERSION (DEQ_VERSION_MAJOR * 10000 + DEQ_VERSION_MINOR * 100 + DEQ_VERSION_PATCH)
