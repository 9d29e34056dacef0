#include "harness/format.hpp"

#include <cmath>
#include <cstdio>

namespace cmbench {

std::string duration_text(std::chrono::duration<double> d) {
  const double s = d.count();
  char text[48];
  if (s >= 3600) std::snprintf(text, sizeof(text), "%.1f h", s / 3600);
  else if (s >= 60) std::snprintf(text, sizeof(text), "%.1f min", s / 60);
  else if (s >= 1) std::snprintf(text, sizeof(text), "%.3g s", s);
  else if (s >= 1e-3) std::snprintf(text, sizeof(text), "%.3g ms", s * 1e3);
  else if (s >= 1e-6) std::snprintf(text, sizeof(text), "%.1f us", s * 1e6);
  else std::snprintf(text, sizeof(text), "%.1f ns", s * 1e9);
  return text;
}

std::string ms_text(double ms) {
  char text[32];
  if (ms >= 100) std::snprintf(text, sizeof(text), "%.0f", ms);
  else if (ms >= 1) std::snprintf(text, sizeof(text), "%.2f", ms);
  else std::snprintf(text, sizeof(text), "%.4f", ms);
  return text;
}

std::string bytes_text(double bytes) {
  char text[32];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(text, sizeof(text), "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else if (bytes >= 1024.0 * 1024) std::snprintf(text, sizeof(text), "%.1f MiB", bytes / (1024.0 * 1024));
  else if (bytes >= 1024.0) std::snprintf(text, sizeof(text), "%.1f KiB", bytes / 1024.0);
  else std::snprintf(text, sizeof(text), "%.0f B", bytes);
  return text;
}

std::string figure_text(double v) {
  char text[32];
  if (std::isnan(v)) return "-";
  if (std::abs(v) >= 1e6) std::snprintf(text, sizeof(text), "%.3g", v);
  else if (std::abs(v) >= 100) std::snprintf(text, sizeof(text), "%.0f", v);
  else std::snprintf(text, sizeof(text), "%.3g", v);
  return text;
}

}  // namespace cmbench
