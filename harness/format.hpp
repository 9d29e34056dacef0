// How cmbench writes numbers for people (stderr, the summary table, `cmbench floors`, messages):
// one rule per kind of quantity, so the same figure reads the same everywhere.
#pragma once

#include <chrono>
#include <string>

namespace cmbench {

// A duration in the largest unit it reaches: "12.5 ns", "4.2 us", "1.25 ms", "500 ms",
// "3.5 s", "2.0 min", "1.5 h".
std::string duration_text(std::chrono::duration<double> d);

// Milliseconds as the summary's time columns show them: "1015", "40.39", "0.5019".
std::string ms_text(double ms);

// "512 B", "4.0 KiB", "1.7 MiB", "2.00 GiB".
std::string bytes_text(double bytes);

// A figure of merit: 3 significant figures, whole numbers from 100 on, "-" for none (NaN).
std::string figure_text(double v);

}  // namespace cmbench
