// The text report, following trtexec's lines so scripts that read them keep working.
#include "tools/kiln/report.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

namespace kiln::cli {
namespace {

std::string stats_line(std::vector<double> v, const std::vector<double>& percentiles) {
  std::ostringstream s;
  std::sort(v.begin(), v.end());
  if (v.empty()) v.push_back(0);
  double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  s << "min = " << v.front() << " ms, max = " << v.back() << " ms, mean = " << mean
    << " ms, median = " << median_of(v) << " ms";
  for (double p : percentiles) s << ", percentile(" << p << "%) = " << percentile_of(v, p) << " ms";
  return s.str();
}

// With --verbose only: a line per --avgRuns queries is thousands of lines for a small model.
// As trtexec: GPU latency is the compute time, host latency H2D + compute + D2H.
void print_trace_averages(const InferenceResult& r, const Options& o) {
  const size_t avg_runs = static_cast<size_t>(o.avg_runs);
  std::ostringstream t;
  t << "Timing trace has " << r.queries.size() << " queries over " << r.walltime_ms / 1000 << " s";
  info(t.str());
  if (!o.verbose) return;
  info("=== Trace details ===");
  info("Trace averages of " + std::to_string(avg_runs) + " runs:");
  for (size_t i = 0; i + avg_runs <= r.queries.size(); i += avg_runs) {
    double gpu = 0, host = 0, enq = 0;
    for (size_t k = i; k < i + avg_runs; ++k) {
      gpu += r.queries[k].compute_ms();
      host += r.queries[k].latency_ms();
      enq += r.queries[k].enq_ms();
    }
    std::ostringstream s;
    s << "Average on " << avg_runs << " runs - GPU latency: " << gpu / double(avg_runs) << " ms - Host latency: "
      << host / double(avg_runs) << " ms (enqueue " << enq / double(avg_runs) << " ms)";
    info(s.str());
  }
}

}  // namespace

double percentile_of(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  long all = static_cast<long>(sorted.size());
  long exclude = static_cast<long>((1 - p / 100) * all);
  return sorted[static_cast<size_t>(std::max(all - 1 - exclude, 0L))];
}

double median_of(const std::vector<double>& sorted) {
  if (sorted.empty()) return 0;
  size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

void print_performance_summary(const InferenceResult& r, const Options& o) {
  std::vector<double> latency, enqueue, h2d, compute, d2h;
  for (const QueryTime& q : r.queries) {
    latency.push_back(q.latency_ms());
    enqueue.push_back(q.enq_ms());
    h2d.push_back(q.h2d_ms());
    compute.push_back(q.compute_ms());
    d2h.push_back(q.d2h_ms());
  }
  print_trace_averages(r, o);
  double compute_total = std::accumulate(compute.begin(), compute.end(), 0.0);
  std::ostringstream s;
  info("=== Performance summary ===");
  s << "Throughput: " << (r.walltime_ms > 0 ? 1000.0 * double(r.queries.size()) / r.walltime_ms : 0) << " qps";
  if (o.streams > 1) s << " (" << o.streams << " streams together)";
  info(s.str());
  info("Latency: " + stats_line(latency, o.percentiles));
  info("Enqueue Time: " + stats_line(enqueue, o.percentiles));
  info("H2D Latency: " + stats_line(h2d, o.percentiles));
  info("GPU Compute Time: " + stats_line(compute, o.percentiles));
  info("D2H Latency: " + stats_line(d2h, o.percentiles));
  std::ostringstream w, c;
  w << "Total Host Walltime: " << r.walltime_ms / 1000 << " s";
  c << "Total GPU Compute Time: " << compute_total / 1000 << " s";
  info(w.str());
  info(c.str());
  if (!r.cuda)
    info("On the CPU backend there are no host/device copies: H2D/D2H Latency are 0, and Enqueue Time and GPU "
         "Compute Time are the synchronous execute time.");
  else if (o.no_data_transfers)
    info("--noDataTransfers: the timed queries made no host/device copies (H2D/D2H Latency are 0).");
}

void print_profile_table(const LayerProfile& p) {
  double total = 0;
  for (const auto& [name, v] : p.ms) total += std::accumulate(v.begin(), v.end(), 0.0);
  std::printf("[I] === Profile (%d iterations ) ===\n", p.runs);
  std::printf("[I]    Time(ms)     Avg.(ms)   Median(ms)   Time(%%)   Layer\n");
  for (const std::string& name : p.order) {
    std::vector<double> v(p.ms.at(name).begin(), p.ms.at(name).end());
    std::sort(v.begin(), v.end());
    double sum = std::accumulate(v.begin(), v.end(), 0.0);
    std::printf("[I] %11.2f %12.4f %12.4f %9.1f   %s\n", sum, p.runs ? sum / p.runs : 0.0, median_of(v),
                total > 0 ? 100 * sum / total : 0.0, name.c_str());
  }
  std::printf("[I] %11.2f %12.4f %12.4f %9.1f   Total\n", total, p.runs ? total / p.runs : 0.0,
              p.runs ? total / p.runs : 0.0, 100.0);
}

void print_tactics_table(const Engine& e) {
  struct Row {
    LayerInfo l;
    double gain;  // heuristic time - chosen time
  };
  std::vector<Row> rows;
  int tunable = 0;
  for (int i = 0; i < e.getNbLayers(); ++i) {
    LayerInfo l = e.getLayerInformation(i);
    if (l.tactic_candidates < 2) continue;
    ++tunable;
    if (l.tactic_ms >= 0 && l.heuristic_ms >= 0) rows.push_back({l, l.heuristic_ms - l.tactic_ms});
  }
  std::printf("[I] === Tactics (%d layers with a choice; times at the opt shapes) ===\n", tunable);
  if (rows.empty()) {
    info(tunable ? "no tuning times recorded (an engine built before kiln recorded them)"
                 : "no layer was tuned (--builderOptimizationLevel=0 picks without timing, or each layer had one tactic)");
    return;
  }
  std::printf("[I]  Chosen(ms)  Heuristic(ms)   Gain(%%)   Layer: chosen tactic [heuristic pick]\n");
  double chosen = 0, heuristic = 0;
  int changed = 0;
  for (const Row& r : rows) {
    chosen += r.l.tactic_ms;
    heuristic += r.l.heuristic_ms;
    const bool same = r.l.tactic == r.l.heuristic_tactic;
    changed += !same;
    std::string pick;
    if (!same) pick.append(" [").append(r.l.heuristic_tactic).append("]");
    std::printf("[I] %11.4f %14.4f %9.1f   %s: %s%s\n", r.l.tactic_ms, r.l.heuristic_ms,
                r.l.heuristic_ms > 0 ? 100 * r.gain / r.l.heuristic_ms : 0.0, r.l.name.c_str(), r.l.tactic.c_str(),
                pick.c_str());
  }
  std::printf("[I] %11.4f %14.4f %9.1f   Total: %d of %zu timed layers run another tactic than the heuristic's\n",
              chosen, heuristic, heuristic > 0 ? 100 * (heuristic - chosen) / heuristic : 0.0, changed, rows.size());
  std::vector<const Row*> top;
  for (const Row& r : rows) if (r.gain > 0) top.push_back(&r);
  std::sort(top.begin(), top.end(), [](const Row* a, const Row* b) { return a->gain > b->gain; });
  for (size_t i = 0; i < top.size() && i < 5; ++i) {
    char gain[64];
    std::snprintf(gain, sizeof gain, " %.4f ms (", top[i]->gain);
    std::string line = i ? "  " : "Most gained: ";
    line.append(top[i]->l.name).append(gain).append(top[i]->l.heuristic_tactic).append(" -> ").append(top[i]->l.tactic).append(")");
    info(line);
  }
}

void print_outputs(const std::vector<HostTensor>& outputs) {
  info("Output Tensors:");
  for (const HostTensor& t : outputs) {
    info(t.name + ": (" + dimsToString(t.dims) + ")");
    std::ostringstream s;
    for (size_t i = 0; i < volume(t.dims); ++i) s << (i ? " " : "") << element_as_double(t, i);
    info(s.str());
  }
}

}  // namespace kiln::cli
