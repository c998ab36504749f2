/* SPDX-License-Identifier: MIT
 * main.c - the runner shared by every Check unit suite; SRUP_SUITE names the suite function.
 * Fork mode stays on, so a crash fails one test instead of the whole runner. */
#include <stdlib.h>

#include <check.h>

#include "testutil.h"

int main(void)
{
	SRunner *sr = srunner_create(SRUP_SUITE());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
