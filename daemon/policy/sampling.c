/* SPDX-License-Identifier: MIT */
#include "policy/sampling.h"
