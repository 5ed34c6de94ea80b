/* Placeholder until the relay modules land. */
const char *relay_module_name(void);
const char *
relay_module_name(void)
{
	return "relay";
}
