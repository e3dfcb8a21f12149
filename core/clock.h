/*
 * clock: the two clocks of the helper. Wall-clock milliseconds for
 * timestamps and token claims only; monotonic milliseconds for every
 * duration, deadline and idle limit, so a jump of the system clock (NTP,
 * resume from suspend) closes nothing by itself.
 */
#ifndef COMPANION_CLOCK_H
#define COMPANION_CLOCK_H

#include <stdint.h>

/* Wall-clock ms since the epoch. */
int64_t clock_wall_ms(void);
/* Monotonic ms (CLOCK_MONOTONIC). */
int64_t clock_mono_ms(void);

#endif
