// The facts of every registered model and workload, as `cmbench list` prints them and every
// report carries them in its context: the one place tools learn what a model or a workload is,
// so none of them keeps a table of names.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "models/model.hpp"
#include "workloads/workload.hpp"

namespace cmbench {

// {name, family, variant, description, order, baseline, mechanism: {summary, unit, ...}, waits,
// round_trip_floor (null: none)}.
nlohmann::ordered_json model_facts(const model_entry& model);

// {name, description, measures, order, unit, figures: [{metric, label, heading, kind, better}],
// speedup, memory_per_unit, floor ("round_trip_floor" or null), model_params, params: [...]}.
nlohmann::ordered_json workload_facts(const workload_entry& workload);

// {"models": [every registered model, in order], "workloads": [every workload, in order]}:
// `cmbench list --json`, and the report's context.models / context.workloads.
nlohmann::ordered_json all_facts();

// `cmbench list`: each model's mechanism as a table of fields, each workload's facts and
// parameters with their presets.
std::string facts_table();

}  // namespace cmbench
