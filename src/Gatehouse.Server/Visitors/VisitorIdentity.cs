using System.Security.Cryptography;
using System.Text;
using Gatehouse.Server.Users;

namespace Gatehouse.Server.Visitors;

/// <summary>
/// One stable visitor (or bot) user per device of a network: its userId is derived from the network and the deviceId,
/// so the same device finds the same user on every node without a lookup table, the userId (which other users may
/// see) does not reveal the device's id, and one device is a different visitor in each network (its ids do not link
/// it across the deployment's customers).
/// </summary>
internal static class VisitorIdentity
{
    public static string UserIdFor(string networkId, UserKind kind, string deviceId)
    {
        var prefix = kind == UserKind.Bot ? "bot-" : "visitor-";
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes("gatehouse " + prefix + "\n" + networkId + "\n" + deviceId));
        return prefix + Convert.ToHexStringLower(digest.AsSpan(0, 12));
    }
}
