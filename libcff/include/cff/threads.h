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

// Makes the C library keep freed memory for reuse instead of handing it back to the kernel (glibc: blocks up
// to 1 GiB come from the heap, and the heap's free top is not trimmed below 1 GiB). LibTorch frees and
// allocates the same large buffers every step; by default glibc maps each one afresh and unmaps it on free,
// so every step pays for page faults: training the 32x32 RGB network spent a quarter of its time in the
// kernel, mostly on them, and ran up to 4 times slower (docs/recipe.md, "The allocator"). The cost is that the
// process keeps its high-water memory. cff's programs (cff-train, cff-eval, cff-demo, the training
// benchmark) call it first thing; the elements do not, since the allocator belongs to the host
// application. Returns false where the C library has no such settings (then nothing changes).
bool keep_freed_memory();

}  // namespace cff
#pragma GCC visibility pop
