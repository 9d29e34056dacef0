#include "harness/output.hpp"

#include <cstdlib>

namespace cmbench {

std::string temp_root() {
  const char* dir = std::getenv("TMPDIR");
  return dir != nullptr && dir[0] != '\0' ? dir : "/tmp";
}

}  // namespace cmbench
