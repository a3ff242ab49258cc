#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mt {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

int default_thread_count() {
  const char* env = std::getenv("MOE_TUNE_THREADS");
  if (env && *env) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end && *end == '\0' && v >= 1 && v <= 1024) return (int)v;
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
#endif
  unsigned hc = std::thread::hardware_concurrency();
  return hc >= 1 ? (int)hc : 1;
}

// How long an idle worker polls for the next job before it sleeps.
// (Measured: 1 ms instead of 200 us changes nothing on the tiny-moe step on a quiet machine and
// costs 30% on a busy one, where the spinning worker takes the core from the main thread.)
constexpr auto kSpinTime = std::chrono::microseconds(200);

// Tasks are claimed from one 64-bit word: the job's generation (high 32 bits) and the next task
// index (low 32 bits). A worker that wakes up late, after its job is finished and another one
// started, sees a different generation and claims nothing, so it never runs a task of a job it
// did not read. Whoever claims a task runs it: the caller does every task itself when the
// workers are slow to be scheduled (a loaded machine), and since a task computes the same thing
// on any thread, results stay deterministic.
class Pool {
 public:
  explicit Pool(int threads) { start(threads); }
  ~Pool() { stop(); }

  int size() const { return size_; }

  void resize(int threads) {
    std::lock_guard<std::mutex> busy(callMutex_);
    stop();
    start(threads);
  }

  // Runs tasks [0, ntasks) on the pool; returns false (without running) if the pool is busy.
  bool run(int ntasks, PoolJob job, void* ctx) {
    std::unique_lock<std::mutex> busy(callMutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    const uint32_t gen = (uint32_t)generation_.load(std::memory_order_relaxed) + 1;
    job_.store(job, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    ntasks_.store(ntasks, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    next_.store((uint64_t)gen << 32, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lk(sleepMutex_);
      cv_.notify_all();
    }
    inJob_ = true;
    work(gen, job, ctx, ntasks);
    inJob_ = false;
    int polls = 0;
    while (done_.load(std::memory_order_acquire) != ntasks) {
      cpu_relax();
      if (++polls % 1024 == 0) std::this_thread::yield();  // let a descheduled worker finish
    }
    return true;
  }

  static thread_local bool inJob_;

 private:
  // Claims and runs tasks of job `gen` until none are left.
  void work(uint32_t gen, PoolJob job, void* ctx, int ntasks) {
    for (;;) {
      uint64_t cur = next_.load(std::memory_order_acquire);
      for (;;) {
        if ((uint32_t)(cur >> 32) != gen || (int)(uint32_t)cur >= ntasks) return;
        if (next_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) break;
      }
      job(ctx, (int)(uint32_t)cur, ntasks);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void start(int threads) {
    size_ = threads < 1 ? 1 : threads;
    stopping_.store(false);
    // The generation is read here, not in the new thread: a job published before the thread
    // first runs must still be seen as new.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int t = 1; t < size_; t++) workers_.emplace_back([this, gen] { loop(gen); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(sleepMutex_);
      stopping_.store(true, std::memory_order_seq_cst);
      generation_.fetch_add(1, std::memory_order_seq_cst);
      cv_.notify_all();
    }
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  void loop(uint64_t seen) {
    inJob_ = true;  // a kernel called from inside a task runs serially
    for (;;) {
      // Spin, then sleep, until the generation moves on.
      auto until = std::chrono::steady_clock::now() + kSpinTime;
      int polls = 0;
      while (generation_.load(std::memory_order_acquire) == seen) {
        cpu_relax();
        if (++polls % 64 == 0 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lk(sleepMutex_);
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          while (generation_.load(std::memory_order_seq_cst) == seen) cv_.wait(lk);
          sleepers_.fetch_sub(1, std::memory_order_seq_cst);
          break;
        }
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      // Read the job consistently with its generation (seqlock style).
      PoolJob job;
      void* ctx;
      int ntasks;
      for (;;) {
        seen = generation_.load(std::memory_order_acquire);
        job = job_.load(std::memory_order_relaxed);
        ctx = ctx_.load(std::memory_order_relaxed);
        ntasks = ntasks_.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (generation_.load(std::memory_order_relaxed) == seen) break;
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      if (job) work((uint32_t)seen, job, ctx, ntasks);
    }
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex callMutex_;
  std::mutex sleepMutex_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> next_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<PoolJob> job_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int> ntasks_{0};
};

thread_local bool Pool::inJob_ = false;

std::mutex gPoolInit;
std::atomic<Pool*> gPool{nullptr};

Pool& pool() {
  Pool* p = gPool.load(std::memory_order_acquire);
  if (p) return *p;
  std::lock_guard<std::mutex> lk(gPoolInit);
  p = gPool.load(std::memory_order_relaxed);
  if (!p) {
    // Never destroyed: worker threads must not be joined from static destructors at exit.
    p = new Pool(default_thread_count());
    gPool.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

int pool_threads() { return pool().size(); }

int pool_configure(int threads) {
  std::lock_guard<std::mutex> lk(gPoolInit);
  Pool* p = gPool.load(std::memory_order_relaxed);
  if (!p) {
    p = new Pool(threads);
    gPool.store(p, std::memory_order_release);
  } else if (p->size() != threads) {
    p->resize(threads);
  }
  return p->size();
}

void pool_run(int ntasks, PoolJob job, void* ctx) {
  if (ntasks <= 1 || Pool::inJob_ || pool().size() <= 1 || !pool().run(ntasks, job, ctx)) {
    // Serial: the same tasks, one after another on the caller.
    for (int t = 0; t < ntasks; t++) job(ctx, t, ntasks);
  }
}

}  // namespace mt
