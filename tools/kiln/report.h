// trtexec's text report: trace averages, === Performance summary ===, the --dumpProfile table
// and --dumpOutput.
#pragma once
#include "tools/kiln/inference.h"

namespace kiln::cli {

void print_performance_summary(const InferenceResult& r, const Options& o);
void print_profile_table(const LayerProfile& p);
// --dumpTactics: per tuned layer the tactic chosen, the backend's own pick (what optimization level
// 0 runs) and their times at the opt shapes; then where tuning gained, in total and most.
void print_tactics_table(const Engine& e);
void print_outputs(const std::vector<HostTensor>& outputs);

// trtexec's statistics: percentile p of sorted values (as its findPercentile), and median.
double percentile_of(const std::vector<double>& sorted, double p);
double median_of(const std::vector<double>& sorted);

}  // namespace kiln::cli
