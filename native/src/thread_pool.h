// One persistent pool of worker threads for the whole process. A job is a fixed list of tasks;
// the calling thread and the workers claim them one at a time until none are left. Workers spin
// briefly after each job (back-to-back kernels find them awake) and then sleep on a condition
// variable, so an idle process burns no CPU.
//
// Tasks are fixed by the sizes and the pool size (never by which thread runs them) and each task
// computes the same thing on any thread, so results are deterministic for a given pool size and
// independent of scheduling. A call made while the pool is busy (from inside a task, or from a
// second JS thread) runs the same tasks serially on the caller.
#pragma once

#include <cstdint>

namespace mt {

/** Threads the pool computes with (workers + the caller). Creates the pool on first use. */
int pool_threads();

/** Sets the pool size (>= 1) before first use; later calls resize it. Returns the size. */
int pool_configure(int threads);

typedef void (*PoolJob)(void* ctx, int task, int ntasks);

/** Runs job(ctx, task, ntasks) once for every task in [0, ntasks) on the pool and waits. */
void pool_run(int ntasks, PoolJob job, void* ctx);

/** Calls f(task, n) once for every task in [0, n), on the pool; serially when n <= 1. */
template <class F>
inline void run_tasks(int n, F& f) {
  if (n <= 1) {
    f(0, 1);
    return;
  }
  pool_run(
      n, [](void* c, int task, int ntasks) { (*static_cast<F*>(c))(task, ntasks); }, &f);
}

/**
 * Splits [0, count) into contiguous chunks of at least `grain` items (so small loops stay on one
 * thread), up to kChunksPerThread per pool thread (so a thread slowed by a busy machine holds up
 * little), and calls f(begin, end) for each chunk.
 */
constexpr int kChunksPerThread = 4;
template <class F>
inline void parallel_for(int64_t count, int64_t grain, F&& f) {
  if (count <= 0) return;
  const int threads = pool_threads();
  int64_t chunks = grain > 0 ? count / grain : count;
  if (threads <= 1 || chunks <= 1) {
    f((int64_t)0, count);
    return;
  }
  if (chunks > (int64_t)threads * kChunksPerThread) chunks = (int64_t)threads * kChunksPerThread;
  auto body = [&](int c, int n) {
    int64_t b = count * c / n, e = count * (c + 1) / n;
    if (b < e) f(b, e);
  };
  run_tasks((int)chunks, body);
}

}  // namespace mt
