/* nomod: a shared object that is not an acceptd module (no acceptd_module
 * symbol): the daemon must refuse it. */
int nomod_answer(void);

int
nomod_answer(void)
{
	return 42;
}
