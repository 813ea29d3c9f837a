// SPDX-License-Identifier: BSL-1.0
#include "support.hpp"

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("gil::held follows acquire and release on every thread", "[gil]") {
    CHECK(pyasio::gil::held()); // the test runner's main thread holds it
    bool worker_before = true, worker_inside = false, worker_nested = false, worker_after = true;
    {
        pyasio::gil_release nogil;
        CHECK_FALSE(pyasio::gil::held());
        std::thread([&] {
            worker_before = pyasio::gil::held();
            {
                pyasio::gil_acquire gil;
                worker_inside = pyasio::gil::held();
                {
                    pyasio::gil_acquire again; // nests
                    worker_nested = pyasio::gil::held();
                }
            }
            worker_after = pyasio::gil::held();
        }).join();
    }
    CHECK(pyasio::gil::held());
    CHECK_FALSE(worker_before);
    CHECK(worker_inside);
    CHECK(worker_nested);
    CHECK_FALSE(worker_after);
}

TEST_CASE("gil_release lets Python threads run", "[gil][threads]") {
    test::exec("import threading\n"
               "ticks = 0\n"
               "stop = threading.Event()\n"
               "def spin():\n"
               "    global ticks\n"
               "    while not stop.is_set(): ticks += 1\n"
               "spinner = threading.Thread(target=spin)\n"
               "spinner.start()\n");
    long ticks = 0;
    {
        pyasio::gil_release nogil;
        // Without the release the spinner could not run at all while we wait here.
        for (int i = 0; i < 2000 && ticks == 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            pyasio::gil_acquire gil;
            ticks = pyasio::from_python<long>(test::eval("ticks"));
        }
    }
    test::exec("stop.set()\nspinner.join()\n");
    CHECK(ticks > 0);
}

TEST_CASE("gil_release without the GIL is a clear error", "[gil]") {
    std::string message;
    {
        pyasio::gil_release nogil;
        std::thread([&] {
            try {
                pyasio::gil_release wrong;
            } catch (const std::logic_error& e) {
                message = e.what();
            }
        }).join();
    }
    CHECK(message.find("does not hold the GIL") != std::string::npos);
}

TEST_CASE("a persistent thread state is reused by every acquire on its thread", "[gil]") {
    PyThreadState* kept = nullptr;
    std::vector<PyThreadState*> seen;
    PyThreadState* after_plain_acquire = reinterpret_cast<PyThreadState*>(1);
    PyThreadState* after_persistent = reinterpret_cast<PyThreadState*>(1);
    {
        pyasio::gil_release nogil;
        std::thread([&] {
            { pyasio::gil_acquire gil; }
            // Without a persistent state, the outermost release destroyed the thread state.
            after_plain_acquire = PyGILState_GetThisThreadState();
            {
                pyasio::persistent_thread_state keep;
                kept = keep.get();
                for (int i = 0; i < 3; ++i) {
                    pyasio::gil_acquire gil;
                    seen.push_back(PyThreadState_Get());
                }
                // Between acquires the state stays, and the GIL is not held.
                if (PyGILState_GetThisThreadState() != kept || pyasio::gil::held())
                    seen.push_back(nullptr);
            }
            after_persistent = PyGILState_GetThisThreadState();
        }).join();
    }
    CHECK(after_plain_acquire == nullptr);
    REQUIRE(kept != nullptr);
    REQUIRE(seen.size() == 3);
    for (PyThreadState* ts : seen)
        CHECK(ts == kept);
    CHECK(after_persistent == nullptr); // destroyed with the object, on its thread
}

TEST_CASE("persistent_thread_state on a thread that already has one is a clear error", "[gil]") {
    std::string message;
    {
        pyasio::gil_release nogil; // the main thread has a thread state even without the GIL
        try {
            pyasio::persistent_thread_state twice;
        } catch (const std::logic_error& e) {
            message = e.what();
        }
    }
    CHECK(message.find("already has a Python thread state") != std::string::npos);
}

TEST_CASE("many threads take turns with the GIL", "[gil][threads]") {
    // NOTE: list.append is one C call; `counter += 1` is several bytecodes, and another thread
    // may take the GIL between them (3.8 does), losing increments.
    test::exec("hits = []\n");
    constexpr int threads = 4, rounds = 2000;
    {
        pyasio::gil_release nogil;
        std::vector<std::thread> pool;
        pool.reserve(threads);
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([] {
                pyasio::persistent_thread_state keep;
                for (int i = 0; i < rounds; ++i) {
                    pyasio::gil_acquire gil;
                    test::exec("hits.append(1)\n");
                }
            });
        for (auto& t : pool)
            t.join();
    }
    CHECK(pyasio::from_python<int>(test::eval("len(hits)")) == threads * rounds);
}
