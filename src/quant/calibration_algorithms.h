// From a tensor's |x| histogram to its INT8 threshold amax (scale = amax / 127), by each
// calibration algorithm:
//   entropy     TensorRT's EntropyCalibration2: for each candidate threshold bin i in
//               [128, 2048], P = the first i bins with everything above folded into bin i-1,
//               Q = P's i bins merged into 128 levels and spread back evenly over the non-empty
//               bins; the threshold is the upper edge of the i of least KL(P || Q) (the last
//               one on ties), as NVIDIA's pytorch-quantization computes it.
//   minmax      the absolute maximum.
//   percentile  the upper edge of the bin where the cumulative count reaches q% (at most absmax).
//   mse         the candidate edge (bins 128..2048) of least expected squared error of
//               quantize-dequantize, each bin's count at its center.
#pragma once
#include "kiln/calibrator.h"
#include "quant/histogram.h"

namespace kiln::quant {

double amax_entropy(const AbsHistogram& h);
double amax_percentile(const AbsHistogram& h, double percentile);
double amax_mse(const AbsHistogram& h);
// By algorithm (kLEGACY as percentile with `quantile`, kENTROPY as kENTROPY_2).
double compute_amax(const AbsHistogram& h, CalibrationAlgoType algo, double quantile);

}  // namespace kiln::quant
