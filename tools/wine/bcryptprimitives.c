/* A stand-in bcryptprimitives.dll for Wine 8, which has none.
 *
 * Rust's standard library (1.78 and later) draws its randomness from
 * bcryptprimitives!ProcessPrng, so every Rust extension (cryptography's _rust,
 * which aioquic needs) fails under Wine 8 with "DLL load failed". This one
 * export forwards to BCryptGenRandom with the system RNG, which Wine has.
 * Test-only: it lives next to the Wine leg's python.exe, never in a wheel.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    while (size) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}
