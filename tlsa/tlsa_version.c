/* Placeholder translation unit so the library links before the DANE core lands. */
#include "tlsa.h"

const char *
tlsa_module_name(void)
{
	return "tlsa";
}
