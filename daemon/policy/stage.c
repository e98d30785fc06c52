/* SPDX-License-Identifier: MIT */
#include "policy/stage.h"
