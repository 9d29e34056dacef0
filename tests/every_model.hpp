// What the typed conformance suites share: every registered model's name, and a test name for it.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "models/model.hpp"

namespace cmbench::test_support {

inline std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& m : all_models()) names.push_back(m.name);
  return names;
}

// "coroutines/asio-mt" -> "coroutines_asio_mt": gtest names take letters, digits and '_'.
struct model_test_name {
  template <class ParamInfo>
  std::string operator()(const ParamInfo& info) const {
    std::string s = info.param;
    std::replace(s.begin(), s.end(), '/', '_');
    std::replace(s.begin(), s.end(), '-', '_');
    return s;
  }
};

}  // namespace cmbench::test_support
