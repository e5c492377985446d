// LibTorch's CPU thread count, which is one setting per process: every program, element and test that
// runs inference goes through set_threads. No LibTorch header, so the elements can include it.
#pragma once

#pragma GCC visibility push(default)  // libcff exports what its public headers declare

namespace cff {

// Sets LibTorch's intra-op thread count for the whole process. threads > 0 sets that many. threads <= 0
// means automatic: one per hardware core, unless a positive count was set earlier in this process, which
// then stays (so an element left at its default does not undo the application's or another element's
// choice). Returns the positive count set before this call, 0 if none, so a caller can tell when two
// parts of one process ask for different counts (the later one wins).
int set_threads(int threads);

}  // namespace cff
#pragma GCC visibility pop
