/* SPDX-License-Identifier: MIT */
#include "trace/rollup.h"
