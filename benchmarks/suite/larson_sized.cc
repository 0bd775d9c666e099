// SPDX-License-Identifier: MIT
// larson_sized - larson.c compiled as C++: blocks come from new[] and go back through the
// sized operator delete[] (mimalloc-bench's larsonN-sized), which allocators that replace
// operator delete use to skip the size lookup.
#include "benchmarks/suite/larson.c"
