/* Placeholder translation unit so the library links before the engine lands. */
#include "smtp.h"

const char *
smtp_module_name(void)
{
	return "smtp";
}
