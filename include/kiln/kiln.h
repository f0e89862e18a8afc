// kiln public API, all of it.
#pragma once
#include "kiln/builder.h"
#include "kiln/calibrator.h"
#include "kiln/kernels.h"
#include "kiln/logger.h"
#include "kiln/parser.h"
#include "kiln/runtime.h"
#include "kiln/types.h"
