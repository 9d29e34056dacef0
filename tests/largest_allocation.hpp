// The largest single `operator new` between start() and stop(), in any thread: shows a frame
// announcing a huge length is refused without that length ever being allocated. The replacement
// operators live in largest_allocation.cpp, a source of their own (linked into wire_test only).
#pragma once

#include <cstddef>

namespace largest_allocation {
void start();
std::size_t stop();  // the largest size requested since start()
}  // namespace largest_allocation
