// Where a run's files go.
#pragma once

#include <string>

namespace cmbench {

// TMPDIR when set and not empty, else /tmp: where trial directories go.
std::string temp_root();

}  // namespace cmbench
