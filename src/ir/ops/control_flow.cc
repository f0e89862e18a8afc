#include "ir/op_registry.h"
namespace kiln { void register_control_flow_ops(OpRegistry&) {} }
