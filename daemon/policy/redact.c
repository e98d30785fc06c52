/* SPDX-License-Identifier: MIT */
#include "policy/redact.h"
