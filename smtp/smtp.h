#ifndef SMTP_H
#define SMTP_H
/* smtp/: SMTP protocol engine without I/O. */
const char *smtp_module_name(void);
#endif
