// The CPU backend's tactics. Every layer runs its op's reference kernel ("cpu.reference.<op>");
// the GEMM-based layers (Conv, kiln.ConvAct, MatMul, Gemm, kiln.MatMulBias in floating point)
// have a second tactic, "cpu.reference.<op>.loops", which runs the same kernel with kiln's own
// GEMM loops instead of OpenBLAS (kernels/gemm.h). The tuner times both where the product is
// small enough for the loops to have a chance (every size at optimization level 5).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/registry.h"

namespace kiln::cpu {

std::string reference_tactic(const Node& node);
// The GEMM a recorded tactic runs; an id this build does not know is an error saying to rebuild.
Expected<GemmEngine> gemm_engine_of(const Node& node, const std::string& tactic);
// The layer's candidates at `shapes` (empty: one way to run it).
std::vector<TacticCandidate> cpu_candidates(const Node& node, const ValueShapes& shapes, int optimization_level);
// Times the layers of `g` at `shapes`, on inputs of random values (weights as they are).
std::unique_ptr<TacticTimer> make_cpu_tactic_timer(const Graph& g, const ValueShapes& shapes, int optimization_level);
// The timing cache's device key of this machine: CPU model, OpenBLAS build, tactic set version.
std::string cpu_tuning_key();

}  // namespace kiln::cpu
