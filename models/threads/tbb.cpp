// threads/tbb: oneTBB work stealing in a task_arena of W threads.
//
// Bulk jobs are one parallel_reduce over the task indices (TBB's partitioner decides how
// iterations are grouped and stolen); tree units are task_group tasks, each running its
// children with run() and joining them with wait(), which executes queued tasks meanwhile.
// Graph units are parked actors (parked/graph_interpreter.hpp), each runnable one a task_group task.
//
// oneTBB creates its worker threads lazily, inside the library, and when pthread_create fails
// there it throws from a worker thread, so the process dies in std::terminate ("terminate called
// recursively") with no error a caller could catch. So setup first proves that the W-1 workers
// the arena will ask for can exist: it starts W-1 probe threads with TBB's own stack size, all
// alive at once, and joins them; if one cannot be created, setup throws limit_error naming the
// limit and the count reached, and TBB is never asked. Only then does it build the arena and
// warm it up (which makes TBB create the same W-1 threads the probe just had). A limit that
// tightens between the probe and TBB's own creation (another process of the user taking the
// last RLIMIT_NPROC slot in that millisecond) can still abort it: oneTBB has no way to report it.
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

#include <oneapi/tbb/mutex.h>  // 2021.8 ships no tbb/mutex.h compatibility header
#include <tbb/blocked_range.h>
#include <tbb/cache_aligned_allocator.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/parallel_reduce.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "models/memory_limits.hpp"
#include "models/bulk_task.hpp"
#include "models/model.hpp"
#include "models/parked/graph_interpreter.hpp"
#include "models/parked/heap_graph.hpp"
#include "models/thread_limits.hpp"
#include "models/threads/request_dispatcher.hpp"
#include "models/wire/blocking.hpp"

namespace cmbench {
namespace detail {
namespace {

std::uint64_t tbb_tree_unit(const tree_job& job, std::uint64_t first, std::uint64_t size) {
  const std::uint32_t fanout = job.fanout;
  if (size == 1) return job.leaf_value(first);
  const std::uint64_t child_size = size / fanout;
  std::array<std::uint64_t, 16> local_results;
  std::vector<std::uint64_t> heap_results;
  std::uint64_t* results = local_results.data();
  if (fanout > local_results.size()) {
    heap_results.resize(fanout);
    results = heap_results.data();
  }
  tbb::task_group group;
  for (std::uint32_t c = 0; c < fanout; ++c) {
    group.run([&job, results, c, first, child_size] {
      results[c] = tbb_tree_unit(job, first + c * child_size, child_size);
    });
  }
  group.wait();
  std::uint64_t sum = 0;
  for (std::uint32_t c = 0; c < fanout; ++c) sum += results[c];
  return sum;
}

// A graph job as task_group tasks: each runnable unit is one task that runs it until it parks
// (graph_interpreter). Starting every unit, and resuming them all when the barrier opens, is a
// recursive split over the unit range (each task hands the upper half to run() and keeps the
// lower, as parallel_for with a simple_partitioner does), so a million units never have a
// million tasks alive at once and no task ever blocks waiting for others. The group's wait()
// returns once no unit is runnable: all finished, or the job deadlocked.
// Mutexes are tbb::mutex (one byte, test-and-set, then TBB's bounded spin before sleeping on
// its address-wait table): TBB's blocking mutex; spin_mutex would burn a core whenever a holder
// is preempted, which on 2 shared cores happens.
class tbb_graph {
 public:
  explicit tbb_graph(const graph_job& job) : storage_(job, "threads/tbb"), graph_(storage_, *this) {}

  // Call inside the arena.
  graph_result run() {
    group_.run([this] { spread(0, storage_.job().units, no_unit); });
    group_.wait();
    if (!graph_.all_finished()) throw std::logic_error("graph job deadlocked: a unit waits forever");
    return graph_.result();
  }

  // The interpreter's runtime.
  using mutex_type = tbb::mutex;
  void schedule(std::uint32_t unit) {
    group_.run([this, unit] { graph_.run(unit); });
  }
  void resume_all_but(std::uint32_t unit) {
    group_.run([this, unit] { spread(0, storage_.job().units - 1, unit); });
  }
  void all_finished() {}

 private:
  // Runs units [first, last) of the range that leaves out `skip`.
  void spread(std::uint32_t first, std::uint32_t last, std::uint32_t skip) {
    while (last - first > 1) {
      const std::uint32_t middle = first + (last - first) / 2;
      group_.run([this, middle, last, skip] { spread(middle, last, skip); });
      last = middle;
    }
    graph_.run(first < skip ? first : first + 1);
  }

  tbb::task_group group_;
  heap_graph<tbb::mutex> storage_;
  graph_interpreter<tbb_graph, heap_graph<tbb::mutex>> graph_;
};

// Besides its workers, oneTBB maps about 4 MiB for the arena and a little per worker (measured
// with 2 to 128 workers: 4 to 7 MiB). The probe keeps this much address space mapped while its
// threads are alive, so a probe that passes under RLIMIT_AS leaves room for both.
constexpr std::size_t tbb_own_bytes(unsigned workers) {
  return (std::size_t{8} << 20) + std::size_t{workers} * (std::size_t{64} << 10);
}

// Starts `count` threads of `stack_size` bytes of stack (as oneTBB's thread_monitor::launch
// does), all alive at once, each allocating as a worker does, then lets them go and joins them.
// Throws limit_error if the kernel refuses one (after joining those it made), or if the address
// space oneTBB needs besides them is not left. Returns the address space mapped (KiB, VmSize)
// while every probe was alive: what oneTBB's workers will need (-1: unknown).
std::int64_t probe_threads(unsigned count, std::size_t stack_size) {
  // Held while the probes run: the room oneTBB's own structures will take.
  const std::size_t own = tbb_own_bytes(count + 1);
  void* room = ::mmap(nullptr, own, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (room == MAP_FAILED) {
    throw limit_error("threads/tbb: RLIMIT_AS: no room for the " + with_thousands(own / 1024) +
                      " KiB oneTBB maps for an arena of " + std::to_string(count + 1) + " threads (" +
                      describe_address_space() + ")");
  }
  struct probe_gate {
    std::mutex mutex;
    std::condition_variable cv;
    unsigned ready = 0;  // probes that have allocated
    bool opened = false;
  } gate;
  auto body = [](void* arg) -> void* {
    auto& g = *static_cast<probe_gate*>(arg);
    // Allocate as a worker does, through TBB's allocator and malloc: a new thread's first
    // allocation may reserve address space (glibc's per-thread malloc arenas, 64 MiB each),
    // which under RLIMIT_AS is what later denies a thread its stack. The probes' arenas are
    // then free for TBB's workers to reuse.
    tbb::cache_aligned_allocator<char> allocator;
    allocator.deallocate(allocator.allocate(64), 64);
    void* volatile block = std::malloc(64);  // volatile: the compiler may not fold the pair away
    std::free(block);
    std::unique_lock lock(g.mutex);
    ++g.ready;
    g.cv.notify_all();
    g.cv.wait(lock, [&] { return g.opened; });
    return nullptr;
  };
  pthread_attr_t attributes;
  if (::pthread_attr_init(&attributes) != 0) {  // cannot probe: leave it to TBB
    ::munmap(room, own);
    return -1;
  }
  if (stack_size > 0) ::pthread_attr_setstacksize(&attributes, stack_size);
  std::vector<pthread_t> threads;
  threads.reserve(count);
  int error = 0;
  while (threads.size() < count) {
    pthread_t thread;
    error = ::pthread_create(&thread, &attributes, body, &gate);
    if (error != 0) break;
    threads.push_back(thread);
  }
  ::pthread_attr_destroy(&attributes);
  {
    std::unique_lock lock(gate.mutex);
    gate.cv.wait(lock, [&] { return gate.ready == threads.size(); });
  }
  // Read while the probes are alive: they are what the counts count. (Nothing may throw before
  // the probes are let go and joined.)
  std::string why;
  try {
    if (error != 0) why = describe_thread_failure_safely(std::string(std::strerror(error)));
  } catch (...) {
  }
  const std::int64_t peak_kib = read_address_space().mapped_kib;
  ::munmap(room, own);
  {
    std::lock_guard lock(gate.mutex);
    gate.opened = true;
  }
  gate.cv.notify_all();
  for (pthread_t thread : threads) ::pthread_join(thread, nullptr);
  if (error != 0) {
    throw limit_error("threads/tbb: could only create " + std::to_string(threads.size()) + " of the " +
                      std::to_string(count) +
                      " worker threads the arena needs (probed at setup, since oneTBB aborts the "
                      "process when it cannot create one): " + why);
  }
  return peak_kib;
}

// glibc's malloc arenas in this process (malloc_info lists each as a <heap nr=...>); -1: unknown.
std::int64_t malloc_arenas() {
  char* text = nullptr;
  std::size_t size = 0;
  FILE* out = ::open_memstream(&text, &size);
  if (out == nullptr) return -1;
  const int status = ::malloc_info(0, out);
  std::fclose(out);
  std::int64_t arenas = -1;
  if (status == 0 && text != nullptr) {
    arenas = 0;
    for (const char* at = text; (at = std::strstr(at, "<heap nr=")) != nullptr; ++at) ++arenas;
  }
  std::free(text);
  return arenas;
}

// Under RLIMIT_AS, holds (PROT_NONE, nothing backed) the address space the probe did not use while
// oneTBB builds the arena and starts its workers, so that they can take only what the probe
// proved enough: the same stacks, oneTBB's own room, and the malloc arenas the probes left free.
//
// That is exact only if no worker can reserve a malloc arena of its own (glibc gives a new
// thread one of 64 MiB while it has fewer than 8 per CPU): in the room the probes' stacks gave
// back when joined (glibc caches only 40 MiB of them), a worker's new arena would leave a later
// worker no room for its stack, and oneTBB would abort. So when that room is 64 MiB or more and
// glibc may still make arenas, the workers must fit even if each made one (refused otherwise:
// limit_error, before TBB is asked).
class address_space_fence {
 public:
  address_space_fence(unsigned threads, std::int64_t probed_peak_kib) {
    const address_space as = read_address_space();
    if (as.limit_kib < 0 || probed_peak_kib < 0 || as.mapped_kib < 0) return;
    constexpr std::int64_t slack_kib = 1024;
    constexpr std::int64_t arena_kib = 64 * 1024;  // glibc's HEAP_MAX_SIZE on 64-bit
    const std::int64_t room_kib = probed_peak_kib - as.mapped_kib + slack_kib;  // the workers' share
    const std::int64_t arenas = malloc_arenas();
    const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    const std::int64_t most_arenas =
        8 * std::max<std::int64_t>(online > 0 ? online : 1, usable_cpu_count());
    const std::int64_t new_arenas =
        arenas < 0 ? most_arenas : std::max<std::int64_t>(0, most_arenas - arenas);
    if (room_kib >= arena_kib && new_arenas > 0) {
      // A worker may make an arena: fits only if every one it may make fits besides (and the
      // 128 MiB glibc asks for first, before it settles for 64).
      const std::int64_t worst_kib =
          room_kib + std::min<std::int64_t>(new_arenas, threads) * arena_kib + 2 * arena_kib;
      if (worst_kib > as.left_kib()) {
        throw limit_error(
            "threads/tbb: RLIMIT_AS: " + std::to_string(threads) + " worker threads need " +
            with_thousands(static_cast<std::uint64_t>(room_kib)) +
            " KiB for their stacks and oneTBB's arena, and each of them may reserve a " +
            with_thousands(static_cast<std::uint64_t>(arena_kib)) + " KiB malloc arena (glibc; " +
            std::to_string(new_arenas) + " more possible): up to " +
            with_thousands(static_cast<std::uint64_t>(worst_kib)) + " KiB, " +
            with_thousands(static_cast<std::uint64_t>(as.left_kib())) + " KiB are left (" +
            describe_address_space(as) + "); refused at setup, since oneTBB aborts the process "
            "when it cannot create a worker");
      }
      return;  // the worst case fits: no fence needed
    }
    const std::int64_t spare_kib = as.left_kib() - room_kib;
    if (spare_kib <= 0) return;
    bytes_ = static_cast<std::size_t>(spare_kib) * 1024;
    void* at = ::mmap(nullptr, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (at != MAP_FAILED) held_ = at;
  }
  ~address_space_fence() {
    if (held_ != nullptr) ::munmap(held_, bytes_);
  }
  address_space_fence(const address_space_fence&) = delete;
  address_space_fence& operator=(const address_space_fence&) = delete;

 private:
  void* held_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace
}  // namespace detail

class threads_tbb {
 public:
  static constexpr model_info info{
      .family = "threads",
      .variant = "tbb",
      .description = "oneTBB work stealing in a task_arena of W threads",
      .order = 12,
      .mechanism = {
          .summary = "a oneTBB task_arena(W) made at setup (the calling thread is one of the W); work stealing",
          .unit = "bulk: one auto-partitioned parallel_reduce over the tasks; a graph unit: a parked actor (64-byte "
                  "record + its message buffer, no stack), one task_group task per run until it must wait",
          .tree = "a task_group task that run()s its children and wait()s, stealing work meanwhile",
          .channel = "a tbb::mutex-guarded ring with one parked-sender and one parked-receiver slot; a full or empty "
                     "channel parks the unit",
          .mutex = "a tbb::mutex held by the worker (blocking after TBB's short bounded spin)",
          .barrier = "an atomic count; the last arriver sleeps the hold in its task, then resumes the others by a "
                     "recursive split of task_group tasks",
          .wait = "a blocking sleep inside the task (TBB has no timers), so at most W waits at once; the caller "
                  "waits in task_group::wait (TBB's own spin-then-sleep)",
          .handoff = "the unit that changes a channel task_group::run()s its parked peer: oneTBB spawns it into the "
                     "waking thread's own deque, popped LIFO once the current task returns unless an idle thread "
                     "steals it first",
          .results = "parallel_reduce's sum; a tree's children write into their parent task's results array; a "
                     "graph's checksum in one shared atomic, blocked sends counted per channel and summed at the end",
          .calls = "a parallel_pipeline of C tokens in the arena: a serial filter hands out the calls, a parallel "
                   "filter makes each blocking call on its thread's own connection to the node, so min(C, W) in flight",
          .serves = "a dispatcher thread polls every connection and enqueues each request into the arena as a "
                    "task_group task that sleeps the wait and writes the reply (the caller waits in the arena and "
                    "serves too), so at most W served at once",
      },
      .round_trip_floor = "tbb_handoff_round_trip",
      .waits = wait_capacity::workers,
      .serves = wait_capacity::workers,
  };

  explicit threads_tbb(const model_config& config)
      : scheduler_(tbb::attach{}),
        workers_(std::max(1u, config.workers)),
        // The arena's W slots hold the caller and W-1 TBB workers: those W-1 threads must be
        // possible before TBB is asked to make them (see the file's header).
        probed_peak_kib_(detail::probe_threads(
            workers_ - 1, tbb::global_control::active_value(tbb::global_control::thread_stack_size))),
        // TBB's process-wide thread pool defaults to one thread per core; allow W (the arena
        // itself caps this model at W).
        parallelism_(tbb::global_control::max_allowed_parallelism,
                     std::max<std::size_t>(workers_, static_cast<std::size_t>(
                                                         tbb::info::default_concurrency()))),
        arena_(static_cast<int>(workers_)) {
    const detail::address_space_fence fence(workers_ - 1, probed_peak_kib_);
    arena_.initialize();
    warm_up();
  }

  // Ends the arena and waits until oneTBB's worker threads have exited (when no other user of TBB
  // is left in the process), so the process may fork afterwards: a child forked while they exist
  // inherits a scheduler that counts on threads it does not have (a node forked to serve would
  // wait in vain for its workers and serve on one thread).
  ~threads_tbb() {
    arena_.terminate();
    (void)tbb::finalize(scheduler_, std::nothrow);
  }
  threads_tbb(const threads_tbb&) = delete;
  threads_tbb& operator=(const threads_tbb&) = delete;

  std::uint64_t run_bulk(const bulk_job& job) {
    if (job.tasks == 0) return 0;
    return arena_.execute([&] {
      return tbb::parallel_reduce(
          tbb::blocked_range<std::uint64_t>(0, job.tasks), std::uint64_t{0},
          [&](const tbb::blocked_range<std::uint64_t>& tasks, std::uint64_t sum) {
            for (std::uint64_t task = tasks.begin(); task != tasks.end(); ++task) sum += run_blocking_task(job, task);
            return sum;
          },
          std::plus<>());
    });
  }

  graph_result run_graph(const graph_job& job) {
    if (job.units == 0) return {};
    return arena_.execute([&] {
      detail::tbb_graph run(job);
      return run.run();
    });
  }

  std::uint64_t run_tree(const tree_job& job) {
    return arena_.execute([&] { return detail::tbb_tree_unit(job, 0, job.leaves); });
  }

  // The calls as a pipeline of C tokens, so at most C are outstanding, on the arena's W threads,
  // each blocking in its call. A failed call's exception cancels the pipeline: no more calls are
  // handed out, the ones in flight finish, and parallel_pipeline rethrows it here.
  std::uint64_t run_scatter(const scatter_job& job) {
    if (job.tasks == 0) return 0;
    if (job.nodes.empty()) throw std::runtime_error("threads/tbb: a scatter job with no nodes");
    const std::size_t nodes = job.nodes.size();
    const std::size_t tokens = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(1u, job.in_flight), job.tasks));
    // [arena slot * nodes + node]: a thread's own connections, opened on its first call there.
    std::vector<std::optional<wire::call_connection>> connections(
        static_cast<std::size_t>(arena_.max_concurrency()) * nodes);
    std::atomic<std::uint64_t> sum{0};
    std::uint64_t next = 0;  // touched by the serial filter only
    arena_.execute([&] {
      tbb::parallel_pipeline(
          tokens,
          tbb::make_filter<void, std::uint64_t>(tbb::filter_mode::serial_in_order,
                                                [&](tbb::flow_control& control) -> std::uint64_t {
                                                  if (next == job.tasks) {
                                                    control.stop();
                                                    return 0;
                                                  }
                                                  return next++;
                                                }) &
              tbb::make_filter<std::uint64_t, void>(tbb::filter_mode::parallel, [&](std::uint64_t task) {
                const std::size_t node = task % nodes;
                const auto slot = static_cast<std::size_t>(tbb::this_task_arena::current_thread_index());
                std::optional<wire::call_connection>& connection = connections[slot * nodes + node];
                if (!connection) connection.emplace(job, node);
                try {
                  sum.fetch_add(connection->call(job, task), std::memory_order_relaxed);
                } catch (...) {
                  connection.reset();  // a failed call leaves the connection mid-frame: never reused
                  throw;
                }
              }));
    });
    return sum.load(std::memory_order_relaxed);
  }

  // A dispatcher thread polls the connections and enqueues each request into the arena as a task of
  // one task_group; the calling thread waits on that group inside the arena, so it serves requests
  // too and all W slots do. A deferred empty task holds the group open until the dispatcher is done
  // (stopped, every request served).
  void serve(const serve_job& job) {
    detail::request_dispatcher dispatcher(job);
    arena_.execute([&] {
      tbb::task_group requests;
      tbb::task_handle open = requests.defer([] {});
      std::exception_ptr error;
      std::thread io;
      try {
        io = std::thread([&] {
          try {
            dispatcher.run([&](std::unique_ptr<detail::request_dispatcher::request> request) {
              arena_.enqueue(requests.defer([raw = request.get()] {
                detail::request_dispatcher::request::serve(std::unique_ptr<detail::request_dispatcher::request>(raw));
              }));
              (void)request.release();  // the task owns it now
            });
          } catch (...) {
            error = std::current_exception();
          }
          arena_.enqueue(std::move(open));
        });
      } catch (const std::system_error& e) {
        throw limit_error("threads/tbb: no dispatcher thread for the node: " + detail::describe_thread_failure_safely(e));
      }
      requests.wait();
      io.join();
      if (error) std::rethrow_exception(error);
    });
  }

 private:
  // TBB starts worker threads lazily; make all W of them join the arena now, at setup, so no
  // job pays for thread creation. Each iteration holds its thread until all W have arrived
  // (bounded, in case the scheduler hands out fewer threads).
  void warm_up() {
    std::atomic<unsigned> arrived{0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    arena_.execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<unsigned>(0, workers_, 1),
          [&](const tbb::blocked_range<unsigned>&) {
            arrived.fetch_add(1);
            while (arrived.load() < workers_ && std::chrono::steady_clock::now() < deadline) {
              std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
          },
          tbb::simple_partitioner());
    });
  }

  tbb::task_scheduler_handle scheduler_;  // first: finalized (TBB's workers joined) after the arena
  unsigned workers_;
  std::int64_t probed_peak_kib_;  // address space mapped with every probe alive
  tbb::global_control parallelism_;
  tbb::task_arena arena_;
};

CMBENCH_REGISTER_MODEL(threads_tbb);

}  // namespace cmbench
