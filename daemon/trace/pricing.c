/* SPDX-License-Identifier: MIT */
#include "trace/pricing.h"
