/* SPDX-License-Identifier: MIT
 * roles.c - the names of key roles. Apart from store.c so that what parses a role (the admin
 * command parser, its fuzz target) needs no LMDB. */
#include <string.h>

#include "srupb_store.h"

static const char *const role_names[SRUPB_ROLE__COUNT] = {"none", "server", "device", "observer"};

const char *srupb_role_name(unsigned role)
{
	if (role >= SRUPB_ROLE__COUNT) {
		return "none";
	}
	return role_names[role];
}

enum srupb_role srupb_role_from_name(const char *name)
{
	for (unsigned i = 1; i < SRUPB_ROLE__COUNT; i++) {
		if (strcmp(name, role_names[i]) == 0) {
			return (enum srupb_role)i;
		}
	}
	return SRUPB_ROLE_NONE;
}
